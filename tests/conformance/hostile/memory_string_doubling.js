let s = 'ab';
while (true) {
  s = s + s;
  s.charCodeAt(s.length - 1);
}
