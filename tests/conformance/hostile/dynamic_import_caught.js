import('fs').then(
  () => 'loaded',
  (e) => 'rejected',
)
