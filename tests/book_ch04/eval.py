# coding: utf-8
# Query the word vectors that train.py kept: nearest words and analogies (chapter 4).
import sys
sys.path.append('..')
from fastlstm.util import most_similar, analogy
import pickle


pkl_file = 'cbow_params.pkl'
# pkl_file = 'skipgram_params.pkl'

with open(pkl_file, 'rb') as f:
    params = pickle.load(f)
    word_vecs = params['word_vecs']
    word_to_id = params['word_to_id']
    id_to_word = params['id_to_word']

# nearest words
for query in ['you', 'year', 'car', 'toyota']:
    most_similar(query, word_to_id, id_to_word, word_vecs, top=5)

# analogies
print('-' * 50)
analogy('king', 'man', 'queen', word_to_id, id_to_word, word_vecs)
analogy('take', 'took', 'go', word_to_id, id_to_word, word_vecs)
analogy('car', 'cars', 'child', word_to_id, id_to_word, word_vecs)
analogy('good', 'better', 'bad', word_to_id, id_to_word, word_vecs)
