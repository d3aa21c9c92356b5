input.map((x) => x * 2)
