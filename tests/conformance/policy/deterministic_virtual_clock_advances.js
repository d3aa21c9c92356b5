const a = Date.now(); const b = Date.now(); [b - a, new Date().getTime() - a]
