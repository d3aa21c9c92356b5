throw [1, 'a'];
