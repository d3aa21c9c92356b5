try {
  const a = [];
  while (true) a.push({});
} catch (e) {}
'survived'
