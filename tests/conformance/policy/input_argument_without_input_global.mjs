export default (arg) => [typeof input, arg.a];
