class ValidationError extends Error {
  constructor(field) {
    super('invalid ' + field);
    this.name = 'ValidationError';
  }
}
throw new ValidationError('email');
