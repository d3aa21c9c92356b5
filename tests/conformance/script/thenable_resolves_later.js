({
  then(resolve) {
    Promise.resolve().then(() => resolve({ late: true }));
  },
})
