export default class Job {}
