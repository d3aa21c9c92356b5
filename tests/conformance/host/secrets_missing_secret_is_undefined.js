[typeof secrets.get, secrets.get('API_KEY')]
