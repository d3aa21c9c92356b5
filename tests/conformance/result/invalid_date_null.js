({ d: new Date(NaN) })
