const r = new FinalizationRegistry(() => {});
for (let i = 0; i < 10000; i++) r.register({ i }, i);
'registered'
