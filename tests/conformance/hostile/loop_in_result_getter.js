({ get x() { while (true) {} } })
