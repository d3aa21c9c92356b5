class Loader {
  import(x) {
    return x + 1;
  }
}
export default function () {
  return [new Loader().import(1), { import: (y) => y * 2 }.import(3)];
}
