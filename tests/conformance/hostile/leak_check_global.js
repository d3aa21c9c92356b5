[typeof leak, typeof leakFromFinalizer, ({}).polluted, typeof [].push]
