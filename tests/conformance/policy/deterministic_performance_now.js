[performance.now(), performance.now(), performance.now(), Date.now()]
