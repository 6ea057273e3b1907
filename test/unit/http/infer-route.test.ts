import assert from 'node:assert/strict';
import { matchInferRoute } from '../../../src/http';

describe('infer route matching (the listener that serves infer without express)', () => {
  it('matches the unversioned and versioned infer paths with their route templates', () => {
    assert.deepEqual(matchInferRoute('/v2/models/simple/infer'), {
      model: 'simple',
      version: '',
      template: '/v2/models/#model/infer',
    });
    assert.deepEqual(matchInferRoute('/v2/models/simple/versions/3/infer?x=1'), {
      model: 'simple',
      version: '3',
      template: '/v2/models/#model/versions/#version/infer',
    });
  });

  it('decodes escaped names as express decodes route parameters', () => {
    assert.equal(matchInferRoute('/v2/models/my%20model/infer')?.model, 'my model');
    assert.equal(matchInferRoute('/v2/models/a%2Fb/infer')?.model, 'a/b');
  });

  it('leaves every other spelling and path to express', () => {
    for (const url of [
      '/v2/models/simple/infer/',
      '/V2/models/simple/infer',
      '/v2/models/simple/INFER',
      '/v2/models//infer',
      '/v2/models/a/b/infer',
      '/v2/models/simple/versions//infer',
      '/v2/models/simple/versions/1/2/infer',
      '/v2/models/%E0%A4%A/infer',
      '/v2/models/simple',
      '/v2/models/simple/ready',
      '/v2/models/infer',
      '/v2/repository/index',
    ]) {
      assert.equal(matchInferRoute(url), undefined, url);
    }
  });
});
