[Date.now(), Date.now(), new Date().toISOString(), typeof Date()]
