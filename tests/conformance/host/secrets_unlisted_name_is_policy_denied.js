secrets.get('DB_PASSWORD')
