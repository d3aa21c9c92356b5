try { eval('1') } catch (e) { }
throw new TypeError('mine')
