Symbol('s')
