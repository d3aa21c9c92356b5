typeof secrets
