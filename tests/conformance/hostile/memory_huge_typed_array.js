new Uint8Array(1e9).length
