[new Date(0).getTime(), Date.UTC(2020, 0, 1), new Date('2020-01-01T00:00:00Z').getTime(), new Date() instanceof Date, Date.name, Date.prototype.constructor === Date]
