new SharedArrayBuffer(8)
