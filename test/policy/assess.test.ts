// How long assess() is given for one object when each image has a time of its own (check's deadline).
import t from 'tap'
import { assessDeadlineMs } from '../../src/policy/assess.js'
import type { PodSubject } from '../../src/policy/subject.js'

function subjectOf(images: string[]): PodSubject {
  return {
    namespace: 'team-a',
    kind: 'Deployment',
    name: 'api',
    specField: 'spec.template.spec',
    template: true,
    images: images.map((image, i) => ({
      container: `c${i}`,
      kind: 'container',
      field: `spec.template.spec.containers[${i}]`,
      image,
    })),
    pullSecrets: [],
    serviceAccountName: undefined,
    scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  }
}
const images = (n: number): string[] => Array.from({ length: n }, (_, i) => `reg.example/app${i}:v1`)

const cases: Array<[string, string[], number]> = [
  ['no image: the API reads and the tag listings', [], 2],
  ['one image', images(1), 3],
  ['16 images go at once', images(16), 3],
  ['17 images take two rounds', images(17), 4],
  ['33 images take three rounds', images(33), 5],
  ['the same image in 20 containers is one', Array(20).fill('reg.example/app:v1'), 3],
]
for (const [name, list, periods] of cases) {
  t.test(`${name}: ${periods} periods`, async (t) => {
    t.equal(assessDeadlineMs(subjectOf(list), 1000), periods * 1000)
  })
}
