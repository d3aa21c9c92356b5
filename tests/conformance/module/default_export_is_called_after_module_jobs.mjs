import "./a.js";
Promise.resolve().then(() => console.log("job from main"));
export default function () {
  console.log("default called");
  return 1;
}
