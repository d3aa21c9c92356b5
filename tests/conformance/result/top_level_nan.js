NaN
