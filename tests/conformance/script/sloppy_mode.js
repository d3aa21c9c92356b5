undeclaredGlobal = 5;
typeof undeclaredGlobal
