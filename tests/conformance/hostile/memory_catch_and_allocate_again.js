let caught = 0;
for (let round = 0; round < 3; round++) {
  try {
    const a = [];
    while (true) a.push([round]);
  } catch (e) {
    caught++;
  }
}
const again = new Array(1e7).fill(1);
again.length + caught
