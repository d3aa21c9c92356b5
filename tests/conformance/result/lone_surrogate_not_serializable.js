'a\ud800b'
