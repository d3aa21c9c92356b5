console.log({ alpha: 'aaaaaaaaaaaaaaaaaa', beta: 'bbbbbbbbbbbbbbbbbbbbbbb', gamma: 'ccccccccccccccccccc', delta: 1 });
