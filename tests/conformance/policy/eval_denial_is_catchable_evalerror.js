let seen;
try { eval('1') } catch (e) { seen = [e instanceof EvalError, e.name, e.message.startsWith('Palisade policy denies')] }
seen
