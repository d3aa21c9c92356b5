console.log(Math.random().toFixed(6), new Date().toISOString());
