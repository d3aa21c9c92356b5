({ then() { while (true) {} } })
