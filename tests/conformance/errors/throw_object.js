throw { code: 7, why: 'x' };
