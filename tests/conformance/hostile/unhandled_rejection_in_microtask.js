Promise.resolve().then(() => { throw new Error('async'); });
(async () => { throw new Error('fire-and-forget'); })();
2
