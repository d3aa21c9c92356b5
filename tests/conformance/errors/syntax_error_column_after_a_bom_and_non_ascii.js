const s = "ü"; var = 1;
