({ toJSON() { for (;;) {} } })
