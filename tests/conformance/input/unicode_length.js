[input.length, [...input].length]
