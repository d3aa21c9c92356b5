Promise.resolve().then(() => { for (;;) {} });
1
