if (input === null) {
  "yes";
} else {
  "no";
}
