// A property read is located at the property's name, as V8 locates it.
const config = null;
const port = config
  .server
  .port;
