({ get a() { return 5; }, b: 1 })
