typeof input
