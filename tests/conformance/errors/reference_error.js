const a = 1;
notDefinedAnywhere + a;
