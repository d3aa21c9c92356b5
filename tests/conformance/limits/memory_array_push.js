const a = [];
while (true) a.push({ i: a.length });
