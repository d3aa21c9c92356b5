input.added = true;
input.list.push(4);
input
