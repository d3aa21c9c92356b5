export default function (...args) {
  return [args.length >= 1, args[0] === null, input === null];
}
