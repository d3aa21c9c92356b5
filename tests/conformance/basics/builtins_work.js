[
  JSON.stringify({ a: [1] }),
  Math.max(1, 3, 2),
  [3, 1, 2].sort().join(','),
  'abc'.toUpperCase(),
  Object.keys({ x: 1, y: 2 }).length,
  parseInt('ff', 16),
]
