function spin() {
  while (true) {
    try {
      while (true) {}
    } catch (e) {
    } finally {
      continue;
    }
  }
}
spin();
