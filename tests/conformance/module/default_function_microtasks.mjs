export default function () {
  Promise.resolve().then(() => console.log('drained'));
  return 'done';
}
