import testing from './testing.js'

export const { panic, sleep } = testing
export default testing
