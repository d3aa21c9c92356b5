export default typeof this;
